"""Per-layer numeric diff of a PT2E-quantized program against its float program, in bounded memory.

Built on torchao's numeric debugger: ``generate_numeric_debug_handle`` tags the float program's
nodes before quantization, ``prepare_for_propagation_comparison`` puts an ``OutputLogger`` after
every tagged node of both programs, and ``compare_results`` pairs the logged tensors by tag and
gives their SQNR. Run as is, the loggers keep every intermediate tensor of every clip of both
programs: 5g at 64 × 224² went past 24 GiB on its 2 diff clips (the quantized program logs its
quantize / dequantize nodes too) and the export was killed.

Here both programs run once per clip and per group of tags whose float tensors, twice over (float
and quantized), fit in :data:`~.layer_diff.CHUNK_BYTES`; the loggers of the other tags are swapped for
``nn.Identity`` during that run. Each group's tensors are compared and dropped before the next.
For a tag logged at several nodes of the quantized program, the last one is compared, as
``extract_results_from_loggers`` does. The rows are those of ``compare_results`` over all the
clips at once: each node's worst SQNR over the clips.
"""

from __future__ import annotations

import math
from collections.abc import Container, Sequence
from typing import Any

import numpy as np
import torch

from .layer_diff import CHUNK_BYTES, LayerError, chunks


def clip_tensor(clip: np.ndarray) -> torch.Tensor:
    """A clip as a contiguous float32 tensor (sharing the array's memory when it already is one)."""
    return torch.from_numpy(np.ascontiguousarray(clip, dtype=np.float32))


def _loggers(model: torch.fx.GraphModule) -> dict[Any, str]:
    """``{debug info: attribute name}`` of ``model``'s loggers, the last one of each debug info; the others are
    swapped for ``nn.Identity`` (``extract_results_from_loggers`` would overwrite their tensors anyway)."""
    from torchao.quantization.pt2e._numeric_debugger import OutputLogger

    named = [(name, module) for name, module in model.named_children() if isinstance(module, OutputLogger)]
    last = {module.debug_info: name for name, module in named}
    for name, module in named:
        if last[module.debug_info] != name:
            setattr(model, name, torch.nn.Identity())
    return last


def _node_bytes(model: torch.fx.GraphModule, clip_bytes: int) -> dict[str, int]:
    """Bytes of each node's output (its traced ``val``; ``clip_bytes`` for a node without one)."""
    sizes = {}
    for node in model.graph.nodes:
        value = node.meta.get("val")
        sizes[node.name] = (value.numel() * value.element_size() if isinstance(value, torch.Tensor)
                            else clip_bytes)
    return sizes


def layer_diff(reference: torch.fx.GraphModule, converted: torch.fx.GraphModule, clips: Sequence[np.ndarray],
               budget: int = CHUNK_BYTES) -> list[LayerError]:
    """Every tagged node's output in the quantized model against the float model, in graph order.

    ``reference`` is the float program's module after ``generate_numeric_debug_handle``, ``converted``
    the ``convert_pt2e`` output. At most ``budget`` bytes of logged tensors are held at once (an
    estimate: each node's float output size, counted for both programs). This is PyTorch's simulation of
    the int8 graph (fake-quantized reference kernels), not XNNPACK's: it locates where precision is
    lost, while the gate judges the ``.pte`` itself.
    """
    from torchao.quantization.pt2e import compare_results, extract_results_from_loggers
    from torchao.quantization.pt2e._numeric_debugger import prepare_for_propagation_comparison

    if not clips:
        return []
    models = [prepare_for_propagation_comparison(model) for model in (reference, converted)]
    loggers = [_loggers(model) for model in models]
    modules = [{name: getattr(model, name) for name in found.values()} for model, found in zip(models, loggers)]
    order = {node.name: i for i, node in enumerate(reference.graph.nodes)}
    sizes = _node_bytes(reference, 4 * math.prod(np.shape(clips[0])))
    by_node = {modules[0][name].node_name: info for info, name in loggers[0].items()}
    shared = [node for node in sorted(by_node, key=lambda n: order.get(n, len(order)))
              if by_node[node] in loggers[1]]
    worst: dict[str, tuple[float, str]] = {}
    for group in chunks(shared, {n: 2 * b for n, b in sizes.items()}, 0, budget):
        chosen = {by_node[node] for node in group}
        for model, found, logger_of in zip(models, loggers, modules):
            for info, name in found.items():
                setattr(model, name, logger_of[name] if info in chosen else torch.nn.Identity())
        for clip in clips:
            with torch.no_grad():
                for model in models:
                    model(clip_tensor(clip))
            summaries = compare_results(*(extract_results_from_loggers(model) for model in models))
            for logger_of in modules:
                for name in logger_of:
                    logger_of[name].stats.clear()
            for summary in summaries.values():
                values = [float(r.sqnr) for r in summary.results if isinstance(r.actual, torch.Tensor)]
                if values:
                    previous = worst.get(summary.ref_node_name, (math.inf, ""))[0]
                    worst[summary.ref_node_name] = (min(previous, *values), summary.ref_module_stack)
    sqnrs = {name: sqnr if np.isfinite(sqnr) else 200.0 for name, (sqnr, _) in worst.items()}
    nodes = {node.name: node for node in reference.graph.nodes}
    rounded = rounded_nodes(converted.graph)
    return [LayerError(tensor=name, node=name, op_type=name.rstrip("_0123456789"), module=stack,
                       sqnr_db=sqnrs[name], local_db=None,
                       input_sqnr_db=min((sqnrs[feed] for feed in logged_inputs(nodes[name], sqnrs)), default=200.0),
                       rounded=name in rounded)
            for name, (_, stack) in sorted(worst.items(), key=lambda item: order.get(item[0], len(order)))]


def logged_inputs(node: torch.fx.Node, logged: Container[str]) -> list[str]:
    """The nearest nodes upstream of ``node`` whose names are in ``logged``, reached through the nodes that are not
    (views, getitems); a graph input or a constant ends a path."""
    found, seen, stack = [], set(), list(node.all_input_nodes)
    while stack:
        feed = stack.pop()
        if feed.name in seen:
            continue
        seen.add(feed.name)
        if feed.name in logged:
            found.append(feed.name)
        elif feed.op == "call_function":
            stack.extend(feed.all_input_nodes)
    return found


def rounded_nodes(graph: torch.fx.Graph) -> set[str]:
    """Names of the nodes of a ``convert_pt2e`` graph whose output a quantize op reads (rounds to int8)."""
    return {node.name for node in graph.nodes
            if any(str(user.target).startswith("quantized_decomposed.quantize_per_") for user in node.users)}
