"""Importing a trained Keras 3 functional model as the initial network (docs/import.md).

Modules, in pipeline order: `graph` (the model's operations, flattened; unsupported
classes refused), `mapping` (tensor states to spec layers: BN, activations, padding, SE
gates, residual adds, the head), `assemble` (blocks and search settings: the NetworkSpec),
`weights` (the user's weights into the super-network; MACs and parameters counted on the
Keras layers), `report` (every layer, its node, unit and search settings) and
`model_import` (the entry points `load_keras_model`, `import_model`, `parity`,
`write_import`; tools/import_model.py is their command line).
"""
