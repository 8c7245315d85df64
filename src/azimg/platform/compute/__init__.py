"""The compute controller: the platform's side of the fabric (``controller.ComputeController``),
what it tells the fabric about a VM (``spec``), and the bytes a VM boots (``os_disk``)."""
