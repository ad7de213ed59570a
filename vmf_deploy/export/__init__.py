"""Export pipeline: recipes, per-target lowering, parity gate, manifest and the vmf-export driver."""

from vmf_deploy.export.errors import ExportError

__all__ = ["ExportError"]
