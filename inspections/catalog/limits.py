"""The lengths of an image's free-text fields, read from the model: a serializer, a form, a page's
``maxlength`` and a service check all take them from here, so none can disagree with the column."""

from __future__ import annotations

from inspections.catalog.models import InspectionImage

SOURCE_MAX_LENGTH: int = InspectionImage._meta.get_field("source").max_length
EXTERNAL_ID_MAX_LENGTH: int = InspectionImage._meta.get_field("external_id").max_length
# A search (?q=) looks in the file name and the external id: no longer than the longer of them.
SEARCH_MAX_LENGTH: int = max(InspectionImage._meta.get_field("original_name").max_length, EXTERNAL_ID_MAX_LENGTH)
