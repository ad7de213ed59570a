"""Layer-aligned numeric diff: an artifact's block outputs against PyTorch fp32 or another artifact.

``python -m vmf_deploy.numerics ARTIFACT [OTHER]`` (see :mod:`vmf_deploy.numerics.cli`).
"""
