"""Presets as code: each module holds one experiment's config (`get_config`)."""
