"""The certification artefact: the bundle (written, verified, read from a zip), its
signature, waivers, redaction of evidence and the human report."""
