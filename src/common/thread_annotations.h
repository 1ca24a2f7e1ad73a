// Clang's thread-safety annotations (https://clang.llvm.org/docs/ThreadSafetyAnalysis.html)
// as macros, empty under other compilers. scripts/test checks them with
// clang++ -fsyntax-only -Wthread-safety -Werror (scripts/thread_safety), so a field read
// without its lock, or a *Locked helper called without it, fails the build there.
//
// Use them with the annotated Mutex and SharedMutex of common/mutex.h: std::mutex and
// the std:: lock guards carry no annotations in libstdc++.
#pragma once

#if defined(__clang__)
#define CTX_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define CTX_THREAD_ANNOTATION(x)
#endif

#define CAPABILITY(x) CTX_THREAD_ANNOTATION(capability(x))
#define SCOPED_CAPABILITY CTX_THREAD_ANNOTATION(scoped_lockable)
#define GUARDED_BY(x) CTX_THREAD_ANNOTATION(guarded_by(x))
#define PT_GUARDED_BY(x) CTX_THREAD_ANNOTATION(pt_guarded_by(x))
#define ACQUIRED_BEFORE(...) CTX_THREAD_ANNOTATION(acquired_before(__VA_ARGS__))
#define ACQUIRED_AFTER(...) CTX_THREAD_ANNOTATION(acquired_after(__VA_ARGS__))
#define REQUIRES(...) CTX_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define REQUIRES_SHARED(...) CTX_THREAD_ANNOTATION(requires_shared_capability(__VA_ARGS__))
#define ACQUIRE(...) CTX_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define ACQUIRE_SHARED(...) CTX_THREAD_ANNOTATION(acquire_shared_capability(__VA_ARGS__))
#define RELEASE(...) CTX_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define RELEASE_SHARED(...) CTX_THREAD_ANNOTATION(release_shared_capability(__VA_ARGS__))
#define RELEASE_GENERIC(...) CTX_THREAD_ANNOTATION(release_generic_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) CTX_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define EXCLUDES(...) CTX_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define RETURN_CAPABILITY(x) CTX_THREAD_ANNOTATION(lock_returned(x))
#define NO_THREAD_SAFETY_ANALYSIS CTX_THREAD_ANNOTATION(no_thread_safety_analysis)
