// Package log writes to the host's structured log, tagged with the
// plugin's name. What a plugin prints to stdout or stderr goes there too,
// but these keep the level. Lines longer than 16 KiB are cut.
package log

import (
	"fmt"

	"github.com/informant-dev/informant/guest-sdk/go/internal/wit"
)

// Trace logs a very detailed line.
func Trace(message string) { wit.LogLog(wit.LevelTrace, message) }

// Debug logs a line useful while developing.
func Debug(message string) { wit.LogLog(wit.LevelDebug, message) }

// Info logs a line of normal operation.
func Info(message string) { wit.LogLog(wit.LevelInfo, message) }

// Warn logs something unexpected that the plugin handled.
func Warn(message string) { wit.LogLog(wit.LevelWarn, message) }

// Error logs something that failed.
func Error(message string) { wit.LogLog(wit.LevelError, message) }

// Tracef logs a formatted line at trace level.
func Tracef(format string, args ...any) { Trace(fmt.Sprintf(format, args...)) }

// Debugf logs a formatted line at debug level.
func Debugf(format string, args ...any) { Debug(fmt.Sprintf(format, args...)) }

// Infof logs a formatted line at info level.
func Infof(format string, args ...any) { Info(fmt.Sprintf(format, args...)) }

// Warnf logs a formatted line at warn level.
func Warnf(format string, args ...any) { Warn(fmt.Sprintf(format, args...)) }

// Errorf logs a formatted line at error level.
func Errorf(format string, args ...any) { Error(fmt.Sprintf(format, args...)) }
