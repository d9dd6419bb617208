/** Data layer: datasets as plain typed arrays, augmentation and batching. */
export * from './types';
export * from './rng';
export * from './dataset';
export * from './cache';
export * from './augment';
export * from './batchLoader';
export * from './registry';
export { FASHION_MNIST_CLASSES, loadFashionMnistSource, readFashionClassFile, resolvePackageDir, type SourceResult, type PackageSourceOptions } from './fashionMnist';
export { MNIST_CLASSES, loadMnistSource } from './mnist';
export { CIFAR10_CLASSES, CIFAR100_CLASSES, CIFAR_LAYOUTS, loadCifarSource, parseCifarRecords, type CifarOptions, type CifarVariant } from './cifar';
export { loadTinyImageNetSource, locateTinyImageNet, type TinyImageNetOptions } from './tinyImageNet';
export { readImageFolder, listImages, type ImageFolderOptions } from './imageFolder';
export { padInto } from './pad';
export { decodeImage, decodePngRgb, isImageFile, IMAGE_EXTENSIONS, type DecodedImage } from './imageDecode';
export { downloadFile, md5File, type DownloadOptions } from './download';
export { readTarMembers } from './tar';
