"""The only code that talks to the ATC over HTTP."""
