"""Microsoft.Network over HTTP: one thin router module per resource type.

PUTs finish in the request and answer 201 (created) or 200 (replaced) with
``provisioningState: Succeeded`` and no async headers, which az and the SDK accept as done
(reference/network.md §1.3); DELETE answers 200, or 204 when there was nothing to delete.
"""
