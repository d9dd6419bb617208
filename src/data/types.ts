/** Plain-typed-array datasets, independent of the tensor engine. */

export interface ImageDataset {
  name: string;
  /** N*C*H*W bytes, NCHW order, raw pixel values 0..255. */
  images: Uint8Array;
  labels: Int32Array;
  n: number;
  c: number;
  h: number;
  w: number;
  numClasses: number;
  classNames: string[];
}

export interface DataSplits {
  train: ImageDataset;
  /** Held out from train (for the sound threshold-selection mode); absent when valSize is 0. */
  val?: ImageDataset;
  test: ImageDataset;
}

/** Per-channel statistics of pixel values scaled to [0,1]. */
export interface NormStats {
  mean: number[];
  std: number[];
}

export interface ColorJitterSpec {
  brightness: number;
  contrast: number;
  saturation: number;
}

/** The training-time augmentation recipe of a dataset (see augment.ts). */
export interface AugmentSpec {
  /** Random crop to the original size from the image zero-padded by this many pixels; 0 = none. */
  cropPadding: number;
  /** Random horizontal flip with probability 0.5. */
  flip: boolean;
  colorJitter?: ColorJitterSpec;
}
