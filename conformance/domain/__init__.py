"""ICS domain rules shared by the reference service, the checks and the export rules:
name folding and matching, identifier check digits, working days, the search oracle."""
