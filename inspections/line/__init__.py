"""The production line: classify/ at line rate, per-minute counts and their roll-up,
retention of what a line sends, drift alerts."""
