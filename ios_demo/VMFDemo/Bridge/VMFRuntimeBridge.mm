#import "VMFRuntimeBridge.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "vmf/bench.h"
#include "vmf/benchmark.h"
#include "vmf/classify.h"
#include "vmf/cli.h"
#include "vmf/error.h"
#include "vmf/manifest.h"
#include "vmf/model.h"
#include "vmf/preprocess.h"
#include "vmf/sha256.h"

NSErrorDomain const VMFErrorDomain = @"org.vmfdeploy.runtime";

namespace {

BOOL fail(NSError **error, const std::exception &e) {
  if (error) {
    *error = [NSError errorWithDomain:VMFErrorDomain
                                 code:1
                             userInfo:@{NSLocalizedDescriptionKey : [NSString stringWithUTF8String:e.what()]}];
  }
  return NO;
}

NSData *float_data(const std::vector<float> &v) { return [NSData dataWithBytes:v.data() length:v.size() * sizeof(float)]; }

std::vector<float> float_vector(NSData *data) {
  const auto *p = static_cast<const float *>(data.bytes);
  return std::vector<float>(p, p + data.length / sizeof(float));
}

}  // namespace

@implementation VMFPrediction
- (instancetype)initWithIndex:(NSInteger)index label:(NSString *)label score:(float)score {
  if ((self = [super init])) {
    _index = index;
    _label = [label copy];
    _score = score;
  }
  return self;
}
@end

@implementation VMFClipPreprocessor {
  vmf::Manifest _manifest;
  std::vector<std::string> _labels;
  std::unique_ptr<vmf::ClipBuilder> _clip;
  double _preprocessMs;
}

- (nullable instancetype)initWithManifestPath:(NSString *)path error:(NSError **)error {
  if (!(self = [super init])) return nil;
  try {
    _manifest = vmf::load_manifest(path.UTF8String);
    _labels = vmf::load_labels(_manifest.labels_path(), _manifest.labels_count);
  } catch (const std::exception &e) {
    fail(error, e);
    return nil;
  }
  return self;
}

- (NSInteger)clipFrames { return _manifest.preprocessing.frames; }
- (NSArray<NSNumber *> *)inputShape {
  NSMutableArray *shape = [NSMutableArray array];
  for (int64_t d : _manifest.input_shape) [shape addObject:@(d)];
  return shape;
}
- (NSString *)inputName { return [NSString stringWithUTF8String:_manifest.input_name.c_str()]; }
- (NSString *)artifactPath { return [NSString stringWithUTF8String:_manifest.artifact_path().c_str()]; }
- (NSString *)artifactFormat { return [NSString stringWithUTF8String:_manifest.artifact_format.c_str()]; }
- (double)preprocessMs { return _preprocessMs; }

- (BOOL)verifyArtifactAtPath:(NSString *)path error:(NSError **)error {
  try {
    vmf::verify_artifact(path.UTF8String, _manifest);
    return YES;
  } catch (const std::exception &e) {
    return fail(error, e);
  }
}

- (NSArray<NSNumber *> *)sampleIndicesForFrameCount:(int64_t)count {
  NSMutableArray *out = [NSMutableArray array];
  try {
    for (int64_t i : vmf::sample_indices(count, _manifest.preprocessing.frames)) [out addObject:@(i)];
  } catch (const std::exception &) {
  }
  return out;
}

- (void)beginClip {
  _clip = std::make_unique<vmf::ClipBuilder>(_manifest.preprocessing);
  _preprocessMs = 0;
}

- (BOOL)setFrame:(CVPixelBufferRef)pixelBuffer atSlot:(NSInteger)slot error:(NSError **)error {
  try {
    if (!_clip) throw vmf::Error("call beginClip before setFrame");
    if (CVPixelBufferGetPixelFormatType(pixelBuffer) != kCVPixelFormatType_32BGRA) {
      throw vmf::Error("frames must be kCVPixelFormatType_32BGRA pixel buffers");
    }
    const auto start = std::chrono::steady_clock::now();
    CVPixelBufferLockBaseAddress(pixelBuffer, kCVPixelBufferLock_ReadOnly);
    const vmf::FrameView view{static_cast<const uint8_t *>(CVPixelBufferGetBaseAddress(pixelBuffer)),
                              int(CVPixelBufferGetHeight(pixelBuffer)), int(CVPixelBufferGetWidth(pixelBuffer)),
                              vmf::PixelFormat::kBGRA, CVPixelBufferGetBytesPerRow(pixelBuffer)};
    try {
      _clip->set_frame(int(slot), view);
    } catch (...) {
      CVPixelBufferUnlockBaseAddress(pixelBuffer, kCVPixelBufferLock_ReadOnly);
      throw;
    }
    CVPixelBufferUnlockBaseAddress(pixelBuffer, kCVPixelBufferLock_ReadOnly);
    _preprocessMs += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    return YES;
  } catch (const std::exception &e) {
    return fail(error, e);
  }
}

- (nullable NSData *)clipTensorWithError:(NSError **)error {
  try {
    if (!_clip) throw vmf::Error("call beginClip and setFrame for every slot first");
    return float_data(_clip->tensor());
  } catch (const std::exception &e) {
    fail(error, e);
    return nil;
  }
}

- (NSData *)benchmarkInput { return float_data(vmf::benchmark_input(_manifest.preprocessing)); }

- (nullable NSArray<VMFPrediction *> *)topK:(NSInteger)k logits:(NSData *)logits error:(NSError **)error {
  try {
    NSMutableArray *out = [NSMutableArray array];
    for (const auto &p : vmf::top_k(float_vector(logits), _labels, int(k))) {
      [out addObject:[[VMFPrediction alloc] initWithIndex:p.index
                                                    label:[NSString stringWithUTF8String:p.label.c_str()]
                                                    score:p.score]];
    }
    return out;
  } catch (const std::exception &e) {
    fail(error, e);
    return nil;
  }
}

- (nullable NSString *)benchReportForBackend:(NSString *)backend
                                   samplesMs:(NSArray<NSNumber *> *)samplesMs
                                      loadMs:(double)loadMs
                                artifactPath:(NSString *)artifactPath
                           artifactSizeBytes:(int64_t)artifactSizeBytes
                                      warmup:(NSInteger)warmup
                            baselineRssBytes:(int64_t)baselineRssBytes
                                       error:(NSError **)error {
  try {
    vmf::BenchRun run;
    run.backend = backend.UTF8String;
    run.artifact_path = artifactPath.UTF8String;
    run.artifact_size_bytes = artifactSizeBytes;
    run.warmup = int(warmup);
    run.runs = int(samplesMs.count);
    run.load_ms = loadMs;
    for (NSNumber *ms in samplesMs) run.samples_ms.push_back(ms.doubleValue);
    run.baseline_rss_bytes = baselineRssBytes;
    run.peak_rss_bytes = vmf::peak_rss_bytes();
    run.command = "xcodebuild test (VMFDemoTests/BenchmarkTests)";
    vmf::DeviceInfo device = vmf::describe_this_device();
    device.libraries["vmf_runtime"] = VMF_RUNTIME_VERSION;
    return [NSString stringWithUTF8String:vmf::bench_report_json(_manifest, run, device).c_str()];
  } catch (const std::exception &e) {
    fail(error, e);
    return nil;
  }
}

+ (int64_t)currentRssBytes { return vmf::current_rss_bytes(); }
@end

@implementation VMFExecuTorchModel {
  std::unique_ptr<vmf::Model> _model;
  std::string _ptePath;
}

- (nullable instancetype)initWithPTEPath:(NSString *)ptePath manifestPath:(NSString *)manifestPath error:(NSError **)error {
  if (!(self = [super init])) return nil;
  try {
    _ptePath = ptePath.UTF8String;
    _model = std::make_unique<vmf::Model>(_ptePath, vmf::load_manifest(manifestPath.UTF8String));
  } catch (const std::exception &e) {
    fail(error, e);
    return nil;
  }
  return self;
}

- (double)loadMs { return _model->load_ms(); }

- (nullable NSData *)runInput:(NSData *)input error:(NSError **)error {
  try {
    return float_data(_model->run(float_vector(input)));
  } catch (const std::exception &e) {
    fail(error, e);
    return nil;
  }
}

- (nullable NSString *)benchmarkWithWarmup:(NSInteger)warmup runs:(NSInteger)runs error:(NSError **)error {
  try {
    const int64_t baseline = vmf::current_rss_bytes();
    const std::vector<float> input = vmf::benchmark_input(_model->manifest().preprocessing);
    vmf::BenchRun run = vmf::benchmark_model(*_model, input, int(warmup), int(runs), 0, baseline);
    run.artifact_path = _ptePath;
    run.artifact_size_bytes = int64_t(std::filesystem::file_size(_ptePath));
    run.command = "xcodebuild test (VMFDemoTests/BenchmarkTests)";
    return [NSString stringWithUTF8String:vmf::benchmark_report(*_model, run).c_str()];
  } catch (const std::exception &e) {
    fail(error, e);
    return nil;
  }
}
@end

@implementation VMFCommandLine
+ (int)runWithArguments:(NSArray<NSString *> *)arguments inDirectory:(NSString *)directory {
  if (chdir(directory.fileSystemRepresentation) != 0) {
    fprintf(stderr, "vmf_run: error: cannot enter %s\n", directory.fileSystemRepresentation);
    return 1;
  }
  std::vector<std::string> storage{"vmf_run"};
  for (NSString *a in arguments) storage.emplace_back(a.UTF8String);
  std::vector<char *> argv;
  for (auto &a : storage) argv.push_back(a.data());
  const int code = vmf::run_cli(int(argv.size()), argv.data());
  fflush(stdout);
  fflush(stderr);
  return code;
}
@end
