"""Files every stage of the pipeline shares: the bottom layer, importing no other subpackage.

- atomic_files: writing files a rerun reads so a kill leaves the old or the new one
  (`write_json`, `write_bytes`, `write_text`, `write_with`, `replace_directory`,
  `append_line`/`read_journal` for fsynced journals).
- strict_json: reading those files back field by field, with one exception type
  (`RecordError`, `read`, `load`, and the field checks `obj`, `integer`, `string`, ...).
- checksums: SHA-256 manifests beside files and digests inside HDF5 weight files, checked
  before reading (`write_manifest`, `verify_manifest`, `stamp_h5`, `verify_h5`).
- workdir_lock: one run per work directory, a killed holder's lock taken over (`hold`,
  `release`, `WorkdirLockedError`).

Nothing is imported here: import the module you need.
"""
