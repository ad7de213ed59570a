// Swift sees runtimes/ through these Objective-C(++) classes only.
#import "VMFRuntimeBridge.h"
