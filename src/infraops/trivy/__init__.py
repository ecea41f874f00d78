"""The trivy role: scan every running image and keep the CVE history."""
