"""Quality signals and keep/reject decisions for machine-translated rows."""
