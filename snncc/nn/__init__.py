"""Training-side modules that snncc's compiler understands."""

from snncc.nn.timestep_mask import (
    TimestepMask,
    average_timesteps,
    insert_timestep_masks,
    mask_report,
    timestep_masks,
    timestep_regularizer,
)

__all__ = ["TimestepMask", "average_timesteps", "insert_timestep_masks", "mask_report",
           "timestep_masks", "timestep_regularizer"]
