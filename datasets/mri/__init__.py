"""MRI data for the mri application: volumes with patient geometry (LPS), DICOM series and
NIfTI reading/writing, segmentation outputs (DICOM SEG, NIfTI, PNG overlays), the tissue and
lesion data sets, MSD/nnU-Net folders, seeded transforms and the training dataset."""
from .dicom import DicomSeriesError, SeriesInfo, list_series, read_series, write_series
from .io import check_same_geometry, read_image
from .nifti import read_nifti, write_nifti
from .seg import write_dicom_seg, write_label_nifti, write_overlays
from .volume import LPS_TO_RAS, Volume, orientation_label
from . import transforms
from .dataset import SegmentationDataset, axial_axis, case_from_volumes
from .lesions import LESION_LABELS, LesionCase, make_lesion_case, make_lesion_cases
from .mni import TISSUE_LABELS, AxialSplit, TissueTemplate, axial_split, load_tissue_template, \
    tissue_labels, write_tissue_case
from .msd import MSDCase, MSDDataset, open_msd

__all__ = ["Volume", "LPS_TO_RAS", "orientation_label", "SeriesInfo", "DicomSeriesError",
           "list_series", "read_series", "write_series", "read_nifti", "write_nifti",
           "read_image", "check_same_geometry", "write_dicom_seg", "write_label_nifti",
           "write_overlays", "transforms", "SegmentationDataset", "axial_axis",
           "case_from_volumes", "LESION_LABELS", "LesionCase", "make_lesion_case",
           "make_lesion_cases", "TISSUE_LABELS", "AxialSplit", "TissueTemplate", "axial_split",
           "load_tissue_template", "tissue_labels", "write_tissue_case", "MSDCase",
           "MSDDataset", "open_msd"]
