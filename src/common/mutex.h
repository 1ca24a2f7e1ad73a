// Mutex and SharedMutex: std::mutex and std::shared_mutex with clang's thread-safety
// annotations (common/thread_annotations.h), and the scoped locks that go with them.
// Same cost as the std:: types (every call is an inline forward).
//
//   Mutex mu_;
//   int n_ GUARDED_BY(mu_);
//   { MutexLock lock(&mu_); ++n_; }
//
// A condition variable waits through the MutexLock (Wait, WaitFor: std::condition_variable
// on the underlying std::mutex, no extra cost), or with std::condition_variable_any on the
// Mutex itself (it has lock/unlock). A MutexLock can let go and take the lock again
// mid-scope (Unlock, Lock), which the analysis follows.
//
// Thread safety: these are the primitives.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <shared_mutex>

#include "common/thread_annotations.h"

namespace contextd {

class CAPABILITY("mutex") Mutex {
 public:
  void Lock() ACQUIRE() { mu_.lock(); }
  void Unlock() RELEASE() { mu_.unlock(); }
  bool TryLock() TRY_ACQUIRE(true) { return mu_.try_lock(); }
  // BasicLockable, for std::condition_variable_any and std::scoped_lock.
  void lock() ACQUIRE() { mu_.lock(); }
  void unlock() RELEASE() { mu_.unlock(); }
  std::mutex& native() { return mu_; }

 private:
  std::mutex mu_;
};

class CAPABILITY("mutex") SharedMutex {
 public:
  void Lock() ACQUIRE() { mu_.lock(); }
  void Unlock() RELEASE() { mu_.unlock(); }
  void LockShared() ACQUIRE_SHARED() { mu_.lock_shared(); }
  void UnlockShared() RELEASE_SHARED() { mu_.unlock_shared(); }
  // SharedLockable, for std::unique_lock and std::shared_lock where a scope cannot hold
  // the lock (the analysis does not follow those).
  void lock() ACQUIRE() { mu_.lock(); }
  void unlock() RELEASE() { mu_.unlock(); }
  void lock_shared() ACQUIRE_SHARED() { mu_.lock_shared(); }
  void unlock_shared() RELEASE_SHARED() { mu_.unlock_shared(); }

 private:
  std::shared_mutex mu_;
};

class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() RELEASE() {
    if (held_) mu_->Unlock();
  }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  // Lets go of the lock before the scope ends, and takes it again.
  void Unlock() RELEASE() {
    held_ = false;
    mu_->Unlock();
  }
  void Lock() ACQUIRE() {
    mu_->Lock();
    held_ = true;
  }

  // Waits on cv, the lock released meanwhile and held again on return. REQUIRES: held.
  void Wait(std::condition_variable& cv) {
    std::unique_lock<std::mutex> lock(mu_->native(), std::adopt_lock);
    cv.wait(lock);
    lock.release();
  }
  template <class Predicate>
  void Wait(std::condition_variable& cv, Predicate ready) {
    while (!ready()) Wait(cv);
  }
  // False when the time ran out.
  template <class Rep, class Period>
  bool WaitFor(std::condition_variable& cv, std::chrono::duration<Rep, Period> timeout) {
    std::unique_lock<std::mutex> lock(mu_->native(), std::adopt_lock);
    const bool woken = cv.wait_for(lock, timeout) == std::cv_status::no_timeout;
    lock.release();
    return woken;
  }
  // ready() at the end: it held, or the time ran out first.
  template <class Rep, class Period, class Predicate>
  bool WaitFor(std::condition_variable& cv, std::chrono::duration<Rep, Period> timeout, Predicate ready) {
    std::unique_lock<std::mutex> lock(mu_->native(), std::adopt_lock);
    const bool result = cv.wait_for(lock, timeout, ready);
    lock.release();
    return result;
  }

 private:
  Mutex* const mu_;
  bool held_ = true;
};

// Exclusive hold of a SharedMutex.
class SCOPED_CAPABILITY WriterLock {
 public:
  explicit WriterLock(SharedMutex* mu) ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~WriterLock() RELEASE() { mu_->Unlock(); }
  WriterLock(const WriterLock&) = delete;
  WriterLock& operator=(const WriterLock&) = delete;

 private:
  SharedMutex* const mu_;
};

// Shared hold of a SharedMutex.
class SCOPED_CAPABILITY ReaderLock {
 public:
  explicit ReaderLock(SharedMutex* mu) ACQUIRE_SHARED(mu) : mu_(mu) { mu_->LockShared(); }
  ~ReaderLock() RELEASE() { mu_->UnlockShared(); }
  ReaderLock(const ReaderLock&) = delete;
  ReaderLock& operator=(const ReaderLock&) = delete;

 private:
  SharedMutex* const mu_;
};

}  // namespace contextd
