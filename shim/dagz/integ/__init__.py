"""Per-driver entry points of the DAGZ API. Importing a module hooks that driver where the shim
cannot see it (pure-Python protocols); every module exposes its family's config object."""
