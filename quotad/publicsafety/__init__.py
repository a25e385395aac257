"""Public-safety mobile service (SPEC §6, R-60 … R-65): contract tree, line pairs, group plans,
org packet share, fixed addresses, and the monthly statement."""
