"""Multimodal processing: images, audio, video, documents and spreadsheets, read into text
and details, with files made from them kept for a while (ChatAgent's /multimodal)."""

from tertulia.core.media.batches import MediaBatches
from tertulia.core.media.processing import MediaLimits, MediaOptions, MediaProcessor, Toolbox, find_tools
from tertulia.core.media.service import JOB_KIND, Destinations, MediaService, MediaSettings, MediaUpload

__all__ = [
    "JOB_KIND",
    "Destinations",
    "MediaBatches",
    "MediaLimits",
    "MediaOptions",
    "MediaProcessor",
    "MediaService",
    "MediaSettings",
    "MediaUpload",
    "Toolbox",
    "find_tools",
]
