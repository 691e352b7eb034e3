"""What leaves a run and what is made of it: the typed row (``record``), its append-only
storage (``leaderboard``), tables (``report``), figures (``plots``) and the CI gate (``check``)."""
