"""What the launcher leaves when it refuses to run: shared by the node and the control plane."""

EXIT_CODE = 78
"""Exit status of an attempt whose image changed since submission (sysexits EX_CONFIG)."""
MARK = "environment_changed"
"""The file in the attempt's status directory that says which image changed and how."""
