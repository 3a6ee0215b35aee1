"""MRI data for the mri application: volumes with patient geometry (LPS), DICOM series and
NIfTI reading/writing, and segmentation outputs (DICOM SEG, NIfTI, PNG overlays)."""
from .dicom import DicomSeriesError, SeriesInfo, list_series, read_series, write_series
from .io import check_same_geometry, read_image
from .nifti import read_nifti, write_nifti
from .seg import write_dicom_seg, write_label_nifti, write_overlays
from .volume import LPS_TO_RAS, Volume, orientation_label

__all__ = ["Volume", "LPS_TO_RAS", "orientation_label", "SeriesInfo", "DicomSeriesError",
           "list_series", "read_series", "write_series", "read_nifti", "write_nifti",
           "read_image", "check_same_geometry", "write_dicom_seg", "write_label_nifti",
           "write_overlays"]
