"""The specification as data: the requirement catalogue, capability statements and the
files under ``specs/`` (shipped in the wheel as ``conformance/_specs``)."""
