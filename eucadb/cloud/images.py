"""DB worker images in any cloud: the tags that mark them, and finding or registering one by content.

Both installers (`image install --local` for the embedded cloud, `--file` for a disk built by
`image/build.sh`) name an image after a digest of what it holds. Installing the same content twice
therefore answers the same image id, and an install killed after RegisterImage finds its image by
name (AMI names are unique per account) and finishes the tagging.
"""
from __future__ import annotations

from typing import Any

DB_IMAGE_TAG = ("eucadb:image", "db")     # what the embedded cloud's realizer boots
DIGEST_TAG = "eucadb:image-digest"
SNAPSHOT_TAG = "eucadb:image-snapshot"    # the root snapshot an image file was uploaded to


def image_name(kind: str, digest: str) -> str:
    return f"eucadb-db-{kind}-{digest}"


def find_image(clients: Any, name: str) -> dict | None:
    """Our image of that name, if registered."""
    images = clients.call("ec2", "describe_images", Owners=["self"],
                          Filters=[{"Name": "name", "Values": [name]}])["Images"]
    return images[0] if images else None


def tag_image(clients: Any, image_id: str, digest: str, extra: dict[str, str] | None = None) -> None:
    tags = {DB_IMAGE_TAG[0]: DB_IMAGE_TAG[1], DIGEST_TAG: digest, **(extra or {})}
    clients.call("ec2", "create_tags", Resources=[image_id],
                 Tags=[{"Key": k, "Value": v} for k, v in tags.items()])


def ensure_image(clients: Any, name: str, digest: str, register: dict[str, Any],
                 tags: dict[str, str] | None = None) -> str:
    """The id of image `name`: found, or registered with `register` (RegisterImage parameters);
    tagged either way (tagging is idempotent, and a crash may have come between the two)."""
    found = find_image(clients, name)
    image_id = found["ImageId"] if found else \
        clients.call("ec2", "register_image", Name=name, **register)["ImageId"]
    tag_image(clients, image_id, digest, tags)
    return image_id
