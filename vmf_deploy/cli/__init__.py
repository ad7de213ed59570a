"""Console entry points (``vmf-info``, ``vmf-export``, ``vmf-bench``, ``vmf-predict``)."""
