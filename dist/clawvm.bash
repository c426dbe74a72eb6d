# bash completion for clawvm (installed as DATADIR/bash-completion/completions/clawvm):
# its commands, their options (as vmm/cli.c and vmm/verbs.c have them), paths for the
# options that take one, the names of the running sandboxes (from `clawvm ps`) where a
# command takes NAME, and of the images (from `clawvm image --help`) after image build. With bash-completion loaded, `--kernel=PATH` and `-v HOST:GUEST`
# complete too; without it (the file sourced by hand), only the separate-word forms do.

_clawvm_takes_value() { # VERB OPTION
	case $1:$2 in
	stop:--timeout | stop:-t | kill:-s | kill:--signal) return 0 ;;
	egress:--allow | egress:--revoke | run:--agent) return 0 ;;
	stop:* | kill:* | ps:* | inspect:* | audit:* | egress:*) return 1 ;;
	exec:--vsock-uds | exec:-e | exec:--env | exec:--cwd) return 0 ;;
	exec:*) return 1 ;;
	*:-v | *:--volume | *:--rootfs | *:--cpus | *:--memory | *:--pids | *:--kernel | \
		*:--initrd | *:--console-log | *:--vsock-uds | *:--vsock-cid | *:-e | *:--env | \
		*:-u | *:--user | *:-w | *:--workdir | *:--name | *:--api-sock | *:--jail-user | \
		*:--allow | *:--secret | *:--audit-log | *:--ca-file) return 0 ;;
	esac
	return 1
}

_clawvm_paths() { # dirs|files
	if declare -F _filedir >/dev/null; then
		if [ "$1" = dirs ]; then _filedir -d; else _filedir; fi
		return
	fi
	compopt -o filenames 2>/dev/null
	if [ "$1" = dirs ]; then
		mapfile -t COMPREPLY < <(compgen -d -- "$cur")
	else
		mapfile -t COMPREPLY < <(compgen -f -- "$cur")
	fi
}

# The running sandboxes' names: the first column of `clawvm ps` after its header line.
_clawvm_names() {
	local names
	names=$("${words[0]}" ps </dev/null 2>/dev/null | awk 'NR > 1 { print $1 }')
	mapfile -t COMPREPLY < <(compgen -W "$names" -- "$cur")
}

_clawvm() {
	# shellcheck disable=SC2034 # split: set by _init_completion -s
	local cur prev words cword split i verb opts named='' uds=''
	local sandbox_opts='-v --volume --rootfs --cpus --memory --pids --kernel --initrd
		--console-log --vsock-uds --vsock-cid -e --env -u --user -w --workdir --name --jail-user
		--no-jail --allow --secret --audit-log --ca-file --verbose -h --help'

	COMPREPLY=()
	if declare -F _init_completion >/dev/null; then
		# -s: `--kernel=PATH` gives prev --kernel and cur PATH; -n : keeps HOST:GUEST whole.
		_init_completion -s -n : || return
	else
		words=("${COMP_WORDS[@]}")
		cword=$COMP_CWORD
		cur=${words[cword]}
		prev=${words[cword - 1]}
	fi

	if [ "$cword" -eq 1 ]; then
		mapfile -t COMPREPLY < <(compgen -W 'run vmm exec ps inspect stop kill egress audit image
			--help --version' -- "$cur")
		return
	fi
	verb=${words[1]}
	case $verb in
	run) opts="-d --detach -t --tty -i --interactive --agent $sandbox_opts" ;;
	vmm) opts="--api-sock $sandbox_opts" ;;
	exec) opts='--vsock-uds -t --tty -e --env --cwd -h --help' ;;
	ps) opts='--json -h --help' ;;
	inspect) opts='-h --help' ;;
	stop) opts='--timeout -h --help' ;;
	kill) opts='-s -h --help' ;;
	egress) opts='--allow --revoke --json -h --help' ;;
	audit)
		# audit verify|show FILE
		if [ "$cword" -eq 2 ]; then
			mapfile -t COMPREPLY < <(compgen -W 'verify show -h --help' -- "$cur")
		elif [ "$cword" -eq 3 ]; then
			_clawvm_paths files
		fi
		return
		;;
	image)
		# image build [--force] NAME, image ls [--json]; options anywhere.
		local sub=''
		for ((i = 2; i < cword; i++)); do
			case ${words[i]} in
			-*) ;;
			*) [ -z "$sub" ] && sub=${words[i]} || named=1 ;;
			esac
		done
		if [[ $cur == -* ]]; then
			case $sub in
			build) opts='--force -h --help' ;;
			ls) opts='--json -h --help' ;;
			*) opts='--force --json -h --help' ;;
			esac
			mapfile -t COMPREPLY < <(compgen -W "$opts" -- "$cur")
		elif [ -z "$sub" ]; then
			mapfile -t COMPREPLY < <(compgen -W 'build ls' -- "$cur")
		elif [ "$sub" = build ] && [ -z "$named" ]; then
			# The images there are recipes for: `clawvm image --help` names them.
			mapfile -t COMPREPLY < <(compgen -W "$("${words[0]}" image --help </dev/null 2>/dev/null |
				sed -n 's/^Images: \(.*\) (recipes in .*/\1/p' | tr -d ,)" -- "$cur")
		fi
		return
		;;
	*) return ;;
	esac
	# The words so far: options and their values, then NAME (exec, inspect) or names
	# (stop, kill); past `--`, or past run's first other word or exec's NAME, the words
	# are the guest command's own.
	for ((i = 2; i < cword; i++)); do
		case ${words[i]} in
		--) return ;;
		-*)
			[ -z "$named" ] || [ "$verb" != exec ] || return
			[[ ${words[i]} == --vsock-uds || ${words[i]} == --vsock-uds=* ]] && uds=1
			_clawvm_takes_value "$verb" "${words[i]}" && i=$((i + 1))
			;;
		*)
			case $verb in
			stop | kill) named=1 ;; # more names may follow, no more options
			egress) named=1 ;; # one name; its options may follow it
			exec) [ -z "$uds" ] && [ -z "$named" ] || return; named=1 ;;
			*) return ;;
			esac
			;;
		esac
	done
	[ "$verb" = exec ] && [ -n "$named" ] && return

	case $prev in
	--kernel | --initrd | --console-log | --vsock-uds | --api-sock | --audit-log | --ca-file)
		_clawvm_paths files
		;;
	--agent) mapfile -t COMPREPLY < <(compgen -W 'claude' -- "$cur") ;;
	--rootfs) _clawvm_paths dirs ;;
	# The host directory; the guest path after the colon is the user's to write.
	-v | --volume) [[ $cur == *:* ]] || _clawvm_paths dirs ;;
	*)
		if _clawvm_takes_value "$verb" "$prev"; then
			# kill -s: a signal's name (TERM, or SIGTERM once SIG is typed); other values
			# are the user's to write.
			[ "$verb" = kill ] || return
			if [[ $cur == SIG* ]]; then
				mapfile -t COMPREPLY < <(compgen -A signal -- "$cur")
			else
				mapfile -t COMPREPLY < <(compgen -W "$(compgen -A signal | sed 's/^SIG//')" -- "$cur")
			fi
			return
		fi
		# A name where the verb takes one, else (or for a word that starts with -) an
		# option: no option once stop or kill has a name.
		if [[ $cur != -* ]] && { [ "$verb" = stop ] || [ "$verb" = kill ] ||
			[ "$verb" = inspect ] || { [ "$verb" = egress ] && [ -z "$named" ]; } ||
			{ [ "$verb" = exec ] && [ -z "$uds" ]; }; }; then
			_clawvm_names
		elif [ -z "$named" ] || [ "$verb" = egress ]; then
			mapfile -t COMPREPLY < <(compgen -W "$opts" -- "$cur")
		fi
		;;
	esac
}

complete -F _clawvm clawvm
