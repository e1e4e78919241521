/** The made-up apps the lab's emulators serve: an iOS app (APNs) and an Android project (FCM). */
export const LAB_TEAM_ID = 'TEAM123456';
export const LAB_BUNDLE_ID = 'com.example.pushcall';
export const LAB_FCM_PROJECT = 'pushcall-lab';
