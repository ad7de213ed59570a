// The NDK's bitmap API over a host JVM object, for the JNI bridge's host-side test
// (tests/test_jni_bridge.py): the "bitmap" is an org.vmfdeploy.demo.HostBitmap, whose
// `pixels` byte[] holds RGBA_8888 rows of `width` pixels. A test double of android.graphics.Bitmap
// with the NDK's names, values and signatures (android/bitmap.h), so vmf_jni.cpp runs unchanged.
#include <android/bitmap.h>

namespace {

thread_local jbyteArray locked_array = nullptr;
thread_local jbyte* locked_bytes = nullptr;

jbyteArray pixel_array(JNIEnv* env, jobject bitmap) {
  jclass cls = env->GetObjectClass(bitmap);
  jfieldID field = env->GetFieldID(cls, "pixels", "[B");
  return field == nullptr ? nullptr : static_cast<jbyteArray>(env->GetObjectField(bitmap, field));
}

}  // namespace

extern "C" {

int AndroidBitmap_getInfo(JNIEnv* env, jobject bitmap, AndroidBitmapInfo* info) {
  if (bitmap == nullptr || info == nullptr) return ANDROID_BITMAP_RESULT_BAD_PARAMETER;
  jclass cls = env->GetObjectClass(bitmap);
  jfieldID width = env->GetFieldID(cls, "width", "I");
  jfieldID height = env->GetFieldID(cls, "height", "I");
  if (width == nullptr || height == nullptr) return ANDROID_BITMAP_RESULT_JNI_EXCEPTION;
  info->width = static_cast<uint32_t>(env->GetIntField(bitmap, width));
  info->height = static_cast<uint32_t>(env->GetIntField(bitmap, height));
  info->stride = info->width * 4;
  info->format = ANDROID_BITMAP_FORMAT_RGBA_8888;
  info->flags = 0;
  jbyteArray pixels = pixel_array(env, bitmap);
  if (pixels == nullptr || env->GetArrayLength(pixels) != jsize(info->stride * info->height)) {
    return ANDROID_BITMAP_RESULT_BAD_PARAMETER;
  }
  return ANDROID_BITMAP_RESULT_SUCCESS;
}

int AndroidBitmap_lockPixels(JNIEnv* env, jobject bitmap, void** address) {
  if (locked_array != nullptr) return ANDROID_BITMAP_RESULT_BAD_PARAMETER;  // one bitmap at a time
  locked_array = pixel_array(env, bitmap);
  if (locked_array == nullptr) return ANDROID_BITMAP_RESULT_BAD_PARAMETER;
  locked_bytes = env->GetByteArrayElements(locked_array, nullptr);
  *address = locked_bytes;
  return locked_bytes == nullptr ? ANDROID_BITMAP_RESULT_ALLOCATION_FAILED : ANDROID_BITMAP_RESULT_SUCCESS;
}

int AndroidBitmap_unlockPixels(JNIEnv* env, jobject) {
  if (locked_array == nullptr) return ANDROID_BITMAP_RESULT_BAD_PARAMETER;
  env->ReleaseByteArrayElements(locked_array, locked_bytes, JNI_ABORT);  // read only: nothing to copy back
  locked_array = nullptr;
  locked_bytes = nullptr;
  return ANDROID_BITMAP_RESULT_SUCCESS;
}

}  // extern "C"
