// The Android bitmap API off Android: no Bitmap exists, so every call reports a bad parameter.
#include <android/bitmap.h>

extern "C" {
int AndroidBitmap_getInfo(JNIEnv*, jobject, AndroidBitmapInfo*) { return ANDROID_BITMAP_RESULT_BAD_PARAMETER; }
int AndroidBitmap_lockPixels(JNIEnv*, jobject, void**) { return ANDROID_BITMAP_RESULT_BAD_PARAMETER; }
int AndroidBitmap_unlockPixels(JNIEnv*, jobject) { return ANDROID_BITMAP_RESULT_BAD_PARAMETER; }
}
