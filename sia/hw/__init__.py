"""The Spiking Inference Accelerator (SIA): parameters, cycle-level model, RTL."""
