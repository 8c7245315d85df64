"""The Debian image builder: rootfs (mmdebstrap, cached) → Azure config → layout → GRUB → VHD.

Nothing here mounts a filesystem or attaches a loop device: the partition table is written into
the image file by sfdisk, the root by ``mkfs.ext4 -d -E offset=``, the ESP by ``mkfs.fat
--offset`` plus mtools, and both GRUB images are written at byte offsets. The entry point is
``azimg.image.build.builder.build``.
"""
