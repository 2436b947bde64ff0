"""Structural constants of the OFA-MobileNetV3 supernet (from OFA's ``OFAMobileNetV3``)."""

from __future__ import annotations

NUM_STAGES = 5
MAX_DEPTH = 4
NUM_BLOCKS = NUM_STAGES * MAX_DEPTH

KERNEL_CHOICES = (3, 5, 7)
EXPAND_CHOICES = (3, 4, 6)
DEPTH_CHOICES = (2, 3, 4)
WIDTH_CHOICES = (1.0, 1.2)

#: The resolutions the seed measured; the default everywhere.
SEED_RESOLUTIONS = (160, 176, 192, 208, 224)
#: The resolutions OFA trains its supernet on.
OFA_RESOLUTIONS = tuple(range(128, 225, 4))

#: CompOFA couples the expand ratio of every block of a stage to the stage's depth.
COMPOFA_EXPAND_FOR_DEPTH = {2: 3, 3: 4, 4: 6}
#: Kernel size of every block of a stage in fixed-kernel CompOFA.
COMPOFA_FIXED_KERNELS = (3, 5, 3, 3, 5)

# OFAMobileNetV3: first conv, first block, five elastic stages, final expand, feature mix.
BASE_STAGE_WIDTH = (16, 16, 24, 40, 80, 112, 160, 960, 1280)
STAGE_STRIDES = (2, 2, 2, 1, 2)
STAGE_ACTIVATIONS = ("relu", "relu", "h_swish", "h_swish", "h_swish")
STAGE_USES_SE = (False, True, False, True, True)
FIRST_BLOCK_ACTIVATION = "relu"
CHANNEL_DIVISIBLE = 8
SE_REDUCTION = 4
NUM_CLASSES = 1000
DROPOUT_RATE = 0.1
BN_MOMENTUM = 0.1
BN_EPS = 1e-5
