"""Request bodies of galleries, image definitions and image versions, whole and typed.

Every object is ``extra="forbid"`` (an unknown property is refused by name) and every leaf is
strictly typed, so a wrong type anywhere in a body is 400 ``InvalidRequestContent`` naming the
property (``parse`` in ``arm/models.py``), never a 500 deep in the domain. Enum values stay
``str`` here: the domain checks them case-insensitively and answers ``InvalidParameter`` as
Azure does. Read-only properties are accepted (clients echo a GET back) and ignored.
Shapes: azure-mgmt-compute 39 (api-version 2026-03-03), reference/arm-api.md §7.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Strict

Str = Annotated[str, Strict()]
Int = Annotated[int, Strict()]
Bool = Annotated[bool, Strict()]
Tags = dict[str, Str]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Envelope(Body):
    """What every tracked resource's PUT may carry besides ``properties``."""

    location: Str | None = None
    tags: Tags | None = None
    id: Str | None = None
    name: Str | None = None
    type: Str | None = None
    systemData: dict[str, Any] | None = None  # read-only


class PatchEnvelope(Body):
    tags: Tags | None = None
    id: Str | None = None
    name: Str | None = None
    type: Str | None = None


# --- galleries -----------------------------------------------------------------------------


class CommunityGalleryInfo(Body):
    publisherUri: Str | None = None
    publisherContact: Str | None = None
    eula: Str | None = None
    publicNamePrefix: Str | None = None
    communityGalleryEnabled: Bool | None = None  # read-only
    publicNames: list[Str] | None = None  # read-only


class SharingProfileGroup(Body):
    type: Str | None = None
    ids: list[Str] | None = None


class SharingProfile(Body):
    permissions: Str | None = None
    groups: list[SharingProfileGroup] | None = None  # read-only (POST /share)
    communityGalleryInfo: CommunityGalleryInfo | None = None


class SoftDeletePolicy(Body):
    isSoftDeleteEnabled: Bool | None = None
    retentionPeriodInDays: Int | None = None
    gracePeriodInDays: Int | None = None


class GalleryIdentifier(Body):
    uniqueName: Str | None = None  # read-only


class SharingStatusSummary(Body):
    region: Str | None = None
    state: Str | None = None
    details: Str | None = None


class SharingStatus(Body):
    aggregatedState: Str | None = None
    summary: list[SharingStatusSummary] | None = None


class UserAssignedIdentity(Body):
    principalId: Str | None = None
    clientId: Str | None = None


class GalleryIdentity(Body):
    type: Str | None = None
    principalId: Str | None = None
    tenantId: Str | None = None
    userAssignedIdentities: dict[str, UserAssignedIdentity | None] | None = None


class GalleryProperties(Body):
    description: Str | None = None
    sharingProfile: SharingProfile | None = None
    softDeletePolicy: SoftDeletePolicy | None = None
    identifier: GalleryIdentifier | None = None  # read-only
    provisioningState: Str | None = None  # read-only
    sharingStatus: SharingStatus | None = None  # read-only


class GalleryCreate(Envelope):
    properties: GalleryProperties | None = None
    identity: GalleryIdentity | None = None


class GalleryPatch(PatchEnvelope):
    properties: GalleryProperties | None = None
    identity: GalleryIdentity | None = None


# --- image definitions ---------------------------------------------------------------------


class ImageIdentifier(Body):
    publisher: Str | None = None
    offer: Str | None = None
    sku: Str | None = None


class ResourceRange(Body):
    min: Int | None = None
    max: Int | None = None


class Recommended(Body):
    vCPUs: ResourceRange | None = None
    memory: ResourceRange | None = None


class Disallowed(Body):
    diskTypes: list[Str] | None = None


class PurchasePlan(Body):
    name: Str | None = None
    publisher: Str | None = None
    product: Str | None = None


class Feature(Body):
    name: Str | None = None
    value: Str | None = None
    startsAtVersion: Str | None = None


class GalleryImageProperties(Body):
    osType: Str | None = None
    osState: Str | None = None
    hyperVGeneration: Str | None = None
    architecture: Str | None = None
    identifier: ImageIdentifier | None = None
    endOfLifeDate: Str | None = None
    description: Str | None = None
    eula: Str | None = None
    privacyStatementUri: Str | None = None
    releaseNoteUri: Str | None = None
    recommended: Recommended | None = None
    disallowed: Disallowed | None = None
    purchasePlan: PurchasePlan | None = None
    features: list[Feature] | None = None
    allowUpdateImage: Bool | None = None
    provisioningState: Str | None = None  # read-only


class GalleryImageCreate(Envelope):
    properties: GalleryImageProperties | None = None


class GalleryImagePatch(PatchEnvelope):
    properties: GalleryImageProperties | None = None


# --- image versions ------------------------------------------------------------------------


class OsDiskEncryption(Body):
    diskEncryptionSetId: Str | None = None
    securityProfile: dict[str, Str | None] | None = None


class DataDiskEncryption(Body):
    lun: Int | None = None
    diskEncryptionSetId: Str | None = None


class Encryption(Body):
    osDiskImage: OsDiskEncryption | None = None
    dataDiskImages: list[DataDiskEncryption] | None = None


class AdditionalReplicaSet(Body):
    storageAccountType: Str | None = None
    regionalReplicaCount: Int | None = None


class TargetRegion(Body):
    name: Str | None = None
    regionalReplicaCount: Int | None = None
    storageAccountType: Str | None = None
    encryption: Encryption | None = None
    excludeFromLatest: Bool | None = None
    additionalReplicaSets: list[AdditionalReplicaSet] | None = None


class ExtendedLocation(Body):
    name: Str | None = None
    type: Str | None = None


class TargetExtendedLocation(Body):
    name: Str | None = None
    extendedLocation: ExtendedLocation | None = None
    extendedLocationReplicaCount: Int | None = None
    storageAccountType: Str | None = None
    encryption: Encryption | None = None


class PublishingProfile(Body):
    targetRegions: list[TargetRegion] | None = None
    replicaCount: Int | None = None
    excludeFromLatest: Bool | None = None
    publishedDate: Str | None = None  # read-only
    endOfLifeDate: Str | None = None
    storageAccountType: Str | None = None
    storageAccountStrategy: Str | None = None
    replicationMode: Str | None = None
    targetExtendedLocations: list[TargetExtendedLocation] | None = None


class VersionSource(Body):
    id: Str | None = None
    virtualMachineId: Str | None = None
    communityGalleryImageId: Str | None = None


class DiskImageSource(Body):
    id: Str | None = None
    uri: Str | None = None
    storageAccountId: Str | None = None


class OsDiskImage(Body):
    sizeInGB: Int | None = None  # read-only
    hostCaching: Str | None = None
    source: DiskImageSource | None = None


class DataDiskImage(OsDiskImage):
    lun: Int | None = None


class StorageProfile(Body):
    source: VersionSource | None = None
    osDiskImage: OsDiskImage | None = None
    dataDiskImages: list[DataDiskImage] | None = None


class PolicyViolation(Body):
    category: Str | None = None
    details: Str | None = None


class SafetyProfile(Body):
    allowDeletionOfReplicatedLocations: Bool | None = None
    blockDeletionBeforeEndOfLife: Bool | None = None
    reportedForPolicyViolation: Bool | None = None  # read-only
    policyViolations: list[PolicyViolation] | None = None  # read-only


class UefiKey(Body):
    type: Str | None = None
    value: list[Str] | None = None


class UefiKeySignatures(Body):
    pk: UefiKey | None = None
    kek: list[UefiKey] | None = None
    db: list[UefiKey] | None = None
    dbx: list[UefiKey] | None = None


class UefiSettings(Body):
    signatureTemplateNames: list[Str] | None = None
    additionalSignatures: UefiKeySignatures | None = None


class VersionSecurityProfile(Body):
    uefiSettings: UefiSettings | None = None
    secretsProvisioningSettings: dict[str, Any] | None = None


class RegionalReplicationStatus(Body):
    region: Str | None = None
    state: Str | None = None
    details: Str | None = None
    progress: Int | None = None


class ReplicationStatus(Body):
    aggregatedState: Str | None = None
    summary: list[RegionalReplicationStatus] | None = None


class VersionProperties(Body):
    publishingProfile: PublishingProfile | None = None
    storageProfile: StorageProfile | None = None
    safetyProfile: SafetyProfile | None = None
    securityProfile: VersionSecurityProfile | None = None
    restore: Bool | None = None
    imageMetadataProfiles: list[dict[str, Any]] | None = None
    provisioningState: Str | None = None  # read-only
    replicationStatus: ReplicationStatus | None = None  # read-only
    validationsProfile: dict[str, Any] | None = None  # read-only


class VersionCreate(Envelope):
    properties: VersionProperties | None = None


class VersionPatch(PatchEnvelope):
    properties: VersionProperties | None = None
