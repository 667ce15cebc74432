"""Study files: a study (TOML) declares runs; :mod:`.schema` declares its keys, :mod:`.load` reads and expands
it into run requests, :mod:`.resolved` writes its resolved copy and digest, :mod:`.session` finds, prepares and
previews it for the commands (`bench run STUDY`, `bench reproduce`, `bench study`). docs/studies.md."""
