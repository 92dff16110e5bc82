/**
 * @module The vocabularies the tasks draw from. Labels are short so they fit the 16-column
 * grid: button labels ≤ 5 characters, menu items ≤ 7, list names ≤ 8, settings ≤ 7.
 */

const split = (words: string) => words.split(' ')

/** Apps in distractor menus (memory tasks) — one of them is named in the instruction. */
export const APPS = split('Mail Photos Music Notes Maps Clock Files News Games Books Chat Shop')

/** What an opened app page says (one line, ≤ 14 characters). */
export const APP_LINES = [
  'Nothing new.',
  'All caught up.',
  'No items yet.',
  'Up to date.',
  'Empty for now.',
]

/** Info pages between the shown secret and its use: title and body lines (≤ 15 characters). */
export const PAGES: readonly { title: string; lines: readonly string[] }[] = [
  { title: 'Welcome', lines: ['Hello there.', 'Read on.'] },
  { title: 'News', lines: ['No news today.'] },
  { title: 'Tips', lines: ['Swipe to go', 'back.'] },
  { title: 'Update', lines: ['All apps are', 'up to date.'] },
  { title: 'Weather', lines: ['Sunny, 21 C.'] },
  { title: 'Storage', lines: ['38% used.'] },
  { title: 'Battery', lines: ['Charging.'] },
  { title: 'Calendar', lines: ['No events.'] },
]

/** Notice dialogs (OK continues, Cancel fails): title and message. */
export const NOTICES: readonly { title: string; message: string }[] = [
  { title: 'Notice', message: 'Sync complete.' },
  { title: 'Notice', message: 'Backup saved.' },
  { title: 'Info', message: 'New version.' },
  { title: 'Info', message: 'Draft saved.' },
  { title: 'Alert', message: 'Low storage.' },
]

/** Settings whose on/off state the setting-recall task asks about. */
export const SETTINGS = split('Wi-Fi GPS Sound Sync Alarm Camera Vibrate Hotspot')

/** Labels for the click-button task. */
export const BUTTON_LABELS = split(
  'Save Send Open Copy Print Close Edit Share Undo Redo Help Find Load Play Stop Reply Sort Zoom',
)

/** Menu commands for the menu-confirm task. */
export const COMMANDS = split('Delete Archive Rename Share Print Export Copy Move Pin Mute')

/** Names for the scroll-find list. */
export const NAMES = [
  ...split('Alice Bob Carol Dave Erin Frank Grace Heidi Ivan Judy Ken Laura Mallory'),
  ...split('Nina Olivia Peggy Quinn Rupert Sybil Trent Uma Victor Walter Xena Yusuf Zoe'),
]
