"""What runs on devices and survives them: the mesh, the compiled steps, checkpoints."""
