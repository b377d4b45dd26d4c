"""One-off measurements behind an issue's diagnosis; each script writes its figures to results/diagnostics/."""
