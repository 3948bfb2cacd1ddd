"""An HTTPS emulator of IBM Key Protect (API v2) and the IAM token endpoint,
for Keel's tests. See ../README.md; the reference is ../../../../shared/KEYPROTECT.md."""
