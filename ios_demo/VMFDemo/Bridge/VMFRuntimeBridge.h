// Objective-C face of runtimes/ (C++): manifest, preprocessing, labels, top-k, benchmark reports
// (VMFClipPreprocessor, used by both engines) and the ExecuTorch program (VMFExecuTorchModel).
// Swift holds no preprocessing constant: the manifest carries them and runtimes/ applies them.
#import <CoreVideo/CoreVideo.h>
#import <Foundation/Foundation.h>

NS_ASSUME_NONNULL_BEGIN

extern NSErrorDomain const VMFErrorDomain;

/// One class of a prediction.
@interface VMFPrediction : NSObject
@property(nonatomic, readonly) NSInteger index;
@property(nonatomic, readonly, copy) NSString *label;
@property(nonatomic, readonly) float score;
@end

/// A manifest, its preprocessing and labels; builds one clip tensor frame by frame.
@interface VMFClipPreprocessor : NSObject
- (nullable instancetype)initWithManifestPath:(NSString *)path error:(NSError **)error NS_DESIGNATED_INITIALIZER;
- (instancetype)init NS_UNAVAILABLE;

@property(nonatomic, readonly) NSInteger clipFrames;
@property(nonatomic, readonly, copy) NSArray<NSNumber *> *inputShape;
@property(nonatomic, readonly, copy) NSString *inputName;
@property(nonatomic, readonly, copy) NSString *artifactPath;
@property(nonatomic, readonly, copy) NSString *artifactFormat;

/// Refuses a file or .mlpackage directory whose sha256 differs from the manifest's.
- (BOOL)verifyArtifactAtPath:(NSString *)path error:(NSError **)error;
/// Indices of the frames (of `count`) that make the clip: uniform over the whole video.
- (NSArray<NSNumber *> *)sampleIndicesForFrameCount:(int64_t)count;
/// Starts a new clip; then set every slot 0 ..< clipFrames.
- (void)beginClip;
/// Resizes, crops and normalises a 32BGRA pixel buffer into time slot `slot`.
- (BOOL)setFrame:(CVPixelBufferRef)pixelBuffer atSlot:(NSInteger)slot error:(NSError **)error;
/// Milliseconds spent in setFrame since beginClip.
@property(nonatomic, readonly) double preprocessMs;
/// The completed clip: float32, NCTHW, the manifest's input shape.
- (nullable NSData *)clipTensorWithError:(NSError **)error;
/// A synthetic clip made by the manifest's preprocessing, for benchmarks.
- (NSData *)benchmarkInput;
/// Softmax + top-k with the manifest's labels over float32 logits.
- (nullable NSArray<VMFPrediction *> *)topK:(NSInteger)k logits:(NSData *)logits error:(NSError **)error;
/// The vmf-deploy/bench v1 results document for timings measured by the caller (e.g. Core ML).
- (nullable NSString *)benchReportForBackend:(NSString *)backend
                                   samplesMs:(NSArray<NSNumber *> *)samplesMs
                                      loadMs:(double)loadMs
                                artifactPath:(NSString *)artifactPath
                           artifactSizeBytes:(int64_t)artifactSizeBytes
                                      warmup:(NSInteger)warmup
                              baselineRssBytes:(int64_t)baselineRssBytes
                                       error:(NSError **)error;
+ (int64_t)currentRssBytes;
@end

/// An exported .pte run by ExecuTorch (XNNPACK) through runtimes/ (hash-checked against its manifest).
@interface VMFExecuTorchModel : NSObject
- (nullable instancetype)initWithPTEPath:(NSString *)ptePath
                            manifestPath:(NSString *)manifestPath
                                   error:(NSError **)error NS_DESIGNATED_INITIALIZER;
- (instancetype)init NS_UNAVAILABLE;
@property(nonatomic, readonly) double loadMs;
/// float32 NCTHW input -> float32 logits.
- (nullable NSData *)runInput:(NSData *)input error:(NSError **)error;
/// Times `runs` forward passes after `warmup`; returns the vmf-deploy/bench v1 document.
- (nullable NSString *)benchmarkWithWarmup:(NSInteger)warmup runs:(NSInteger)runs error:(NSError **)error;
@end

/// The vmf_run command line inside the app (vmf-bench's ios backend launches the app with vmf_run's
/// arguments; files are relative to `directory`, the app's Documents folder).
@interface VMFCommandLine : NSObject
/// Runs vmf_run with `arguments` (without the program name); returns its exit code.
+ (int)runWithArguments:(NSArray<NSString *> *)arguments inDirectory:(NSString *)directory;
@end

NS_ASSUME_NONNULL_END
