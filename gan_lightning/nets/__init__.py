"""Plain nn.Modules: no Lightning, no losses, nothing but forward passes and their construction."""
