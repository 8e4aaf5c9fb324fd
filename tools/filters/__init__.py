"""Filter evaluation on corrupted human translations, and the threshold calibration it drives."""
