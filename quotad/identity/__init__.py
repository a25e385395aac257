"""Identity verification of contract holders (SPEC §7, R-50, R-51): pure checks and their storage."""
