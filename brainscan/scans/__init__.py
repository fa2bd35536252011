"""Reading scans (the layer below cam): images and DICOM with one pixel budget, preprocessing steps kept for
display, conversion without identifiers, dataset folders and grouped splits, batches of files. No TensorFlow."""
