"""``mblip demo``: demo sources in every official format, configs, the web demo, a local file server."""
