"""snncc's own Lava processes, alone in this folder: Lava imports every module beside a
process when it searches for its models."""
