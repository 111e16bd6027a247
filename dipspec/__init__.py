"""dipspec: measure and control the spectral bias of the deep image prior."""
