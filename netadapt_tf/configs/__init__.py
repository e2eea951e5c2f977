"""Presets as code: each module holds one experiment's config (`get_config`).

`from_table(presets, name)` is how the preset modules look a name up in their PRESETS.
"""


def from_table(presets: dict, name: str):
    """The preset `name` of `presets` ({name: function returning the config}), built; an
    unknown name is a ValueError that lists the known ones."""
    if name not in presets:
        raise ValueError(f"preset: {name!r} is not one of {sorted(presets)}")
    return presets[name]()
