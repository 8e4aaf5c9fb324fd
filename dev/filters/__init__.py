"""The filter threshold calibration on corrupted human translations."""
